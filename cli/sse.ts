/** One Server-Sent Event: `id:`, `event:` and the `data:` lines joined. */
export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/**
 * Reads Server-Sent Events line by line (the WHATWG rules the CLI needs: fields, comments,
 * multi-line data, a blank line ending each event). Pure: the caller feeds it lines.
 */
export class SseParser {
  private id: string | null = null;
  private event = '';
  private data: string[] = [];

  /** The event a blank line completes, else null. */
  push(line: string): SseEvent | null {
    if (line === '') {
      if (this.data.length === 0 && this.event === '') return null;
      const done: SseEvent = { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
      this.event = '';
      this.data = [];
      return done;
    }
    if (line.startsWith(':')) return null; // a comment: the hub's keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return null;
  }
}
