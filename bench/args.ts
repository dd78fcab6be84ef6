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

/** Runs a benchmark's `main`: exit 0 when it resolves, 1 with the error's stack when it rejects. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(
        `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
