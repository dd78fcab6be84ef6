/** `--name=value` command-line options of the benchmarks. */
export function argReader(argv: readonly string[]) {
  const raw = (name: string): string | undefined =>
    argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return {
    raw,
    has: (name: string) => raw(name) !== undefined,
    /** A positive integer option, or `fallback` when absent. */
    int(name: string, fallback: number): number {
      const v = raw(name);
      const n = v === undefined ? fallback : Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: expected a positive integer`);
      return n;
    },
  };
}
