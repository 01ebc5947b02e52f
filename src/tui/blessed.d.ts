// blessed ships without type declarations (and blessed-contrib's refer to @types/blessed, which
// is not installed): the dashboard's drawing code uses them untyped, behind src/tui/screen.ts.
declare module 'blessed';
