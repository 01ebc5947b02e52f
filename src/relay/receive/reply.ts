// SMTP replies as errors for smtp-server callbacks. The text starts with its own enhanced status
// code; replies.ts makes smtp-server use that code instead of the generic one it would derive
// from the reply code alone (which says 5.1.1 "bad mailbox" for every 550).
export interface SmtpReplyError extends Error { responseCode: number }

export function smtpError(code: number, enhanced: string, text: string): SmtpReplyError {
  return Object.assign(new Error(`${enhanced} ${text}`), { responseCode: code });
}

export const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;
