# Shared pieces of the benchmark scripts: free loopback ports, smtp-sink with a message counter,
# a private Postfix instance, and waiting for a count.

free_port() {
  node_modules/.bin/node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_smtp_sink PORT LOG: Postfix's smtp-sink, printing running counters (mesg=N) to LOG.
start_smtp_sink() {
  smtp-sink -u nobody -c "127.0.0.1:$1" 1000 >"$2" 2>&1 &
  echo $!
}

# sink_count LOG: messages the smtp-sink has received so far.
sink_count() {
  tr '\r' '\n' <"$1" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 | grep . || echo 0
}

# wait_for_count LOG N TIMEOUT_S: waits until the sink has N messages; prints the epoch ms then.
wait_for_count() {
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(sink_count "$1")" -lt "$2" ]; do
    [ "$(date +%s)" -gt "$deadline" ] && { echo "timeout: $(sink_count "$1") of $2" >&2; return 1; }
    sleep 0.05
  done
  date +%s%3N
}

# start_postfix DIR LISTEN_PORT RELAY_PORT: a stock Postfix instance of its own (config and queue
# under DIR, no chroot) relaying everything from loopback to 127.0.0.1:RELAY_PORT.
start_postfix() {
  local dir=$1
  mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
  chown postfix "$dir/data"
  cp /etc/postfix/master.cf /etc/postfix/dynamicmaps.cf "$dir/conf/"
  cat >"$dir/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
myhostname = postfix-bench.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$3
smtpd_relay_restrictions = permit_mynetworks, reject
maillog_file_prefixes = /var, /dev/stdout, /tmp
maillog_file = $dir/maillog
smtp_tls_security_level = none
smtpd_tls_security_level = none
CF
  # its own SMTP port, no chroot (the queue is not under /var/spool/postfix)
  sed -i -E "s/^smtp +inet +n +- +y/$2 inet n - n/; s/^([a-z]+ +(unix|fifo) +[-n] +[-n]) +y /\1 n /" "$dir/conf/master.cf"
  postfix -c "$dir/conf" check >/dev/null 2>&1 || true
  postfix -c "$dir/conf" start >/dev/null 2>&1 || { echo "postfix did not start, see $dir/maillog" >&2; return 1; }
}

stop_postfix() {
  postfix -c "$1/conf" stop >/dev/null 2>&1 || true
}

# cpu_report PID: CPU seconds of each thread of a process, grouped by thread name (main thread,
# workers, libuv pool, V8 helpers), from /proc: what the process really spent, unlike a wall-clock
# sampling profile, which counts the time a thread waits for a core.
cpu_report() {
  local hz; hz=$(getconf CLK_TCK)
  for t in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' <"$t/comm")" "$(awk '{print $14, $15}' "$t/stat")"
  done | awk -v hz="$hz" '{ u[$1] += $2; s[$1] += $3; n[$1]++ }
    END { for (k in u) printf "  %-16s x%-2d %7.2f s (user %.2f, system %.2f)\n", k, n[k], (u[k] + s[k]) / hz, u[k] / hz, s[k] / hz }' | sort -k3 -nr
}

# proc_cpu PID: user+system CPU seconds of a process (all threads).
proc_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}

# wait_for_line FILE PATTERN: waits (up to 30 s) until FILE has a line matching PATTERN.
wait_for_line() {
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "not ready: $1" >&2; cat "$1" >&2; exit 1
}

# stop_pids_and_remove DIR: kills the processes in the array `pids`, waits for them, removes DIR.
stop_pids_and_remove() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$1"
}
