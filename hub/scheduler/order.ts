/** Name order decides every tie, so that the same input always gives the same answer. */
export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
