/** The tail of a container's output, as a crash-looping replica's report carries it. */

/** The last `lines` lines of text (a final newline ends the last, it starts none), clipped to its last maxBytes bytes. */
export function tailOf(text: string, lines: number, maxBytes: number): string {
  let start = text.length;
  let seen = 0;
  // From the end, past the final newline: the start of the lines-th line from the end.
  let i = text.endsWith('\n') ? text.length - 1 : text.length;
  while (i > 0) {
    const nl = text.lastIndexOf('\n', i - 1);
    seen++;
    start = nl + 1;
    if (seen >= lines || nl < 0) break;
    i = nl;
  }
  let tail = text.slice(start);
  const bytes = Buffer.from(tail, 'utf8');
  if (bytes.length > maxBytes) {
    // Cut at a character boundary: a replacement character from a split one is dropped.
    tail = bytes.subarray(bytes.length - maxBytes).toString('utf8').replace(/^\uFFFD+/, '');
  }
  return tail;
}
