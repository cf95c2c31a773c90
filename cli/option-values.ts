import { InvalidArgumentError } from 'commander';

/** A whole number option or argument from `min` to `max`; anything else is a usage error (exit 2). */
export function wholeNumber(min: number, max: number) {
  return (text: string): number => {
    const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** For repeatable options: `-l a=b -l c=d`. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];
