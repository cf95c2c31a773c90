/** A logger that drops everything, for components under test. Set TETHER_TEST_LOG=1 to see it. */
const print = process.env.TETHER_TEST_LOG === '1';
const log = (level: string) => (obj: object, msg: string) => {
  if (print) console.log(level, msg, JSON.stringify(obj));
};
export const silentLogger = { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') };
