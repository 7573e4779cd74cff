/** How to run npm from a test: the npm that runs `npm test` (npm_execpath), else the one on PATH. */
export function npmCommand(): [string, string[]] {
  const cli = process.env.npm_execpath;
  return cli && /\.c?js$/.test(cli) ? [process.execPath, [cli]] : ['npm', []];
}
