/**
 * esbuild plugins of the Lambda bundles (serverless.yml, custom.esbuild.plugins; bench/cold-start.ts
 * builds with the same list).
 *
 * `besideTheHandler`: the packages a function loads only on first use (kafkajs: the container
 * creates its client when the first record is published; jsonwebtoken: the verifier loads it on the
 * first token) go into a file of their own beside the handler, `handlers/<package>.js`, instead of
 * into the handler's bundle. A lazily evaluated module inside the bundle is still parsed when the
 * bundle loads, and kafkajs is ~40 % of it: out of the bundle, a function that never publishes
 * never reads it (docs/architecture.md, "Cold start"). Each such file is bundled, minified and
 * self-contained; every build writes the same content, atomically.
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

/** Packages loaded only on first use: kept out of the handler's bundle. */
const BESIDE_THE_HANDLER = ['kafkajs', 'jsonwebtoken'];

const besideTheHandler = (packages) => ({
  name: 'beside-the-handler',
  setup(build) {
    // Package names only (no regular-expression characters in them).
    const filter = new RegExp(`^(${packages.join('|')})$`);
    // `require('./kafkajs.js')` in the bundle: resolved next to the handler file at run time.
    build.onResolve({ filter }, (args) => ({ path: `./${args.path}.js`, external: true }));
    build.onEnd(async (result) => {
      if (result.errors.length > 0) return;
      const options = build.initialOptions;
      const outdir = options.outdir ?? path.dirname(options.outfile);
      const esbuild = build.esbuild;
      for (const name of packages) {
        const built = await esbuild.build({
          stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir: ROOT },
          bundle: true,
          write: false,
          minify: options.minify,
          keepNames: options.keepNames,
          mainFields: options.mainFields,
          target: options.target,
          platform: options.platform,
          format: 'cjs',
          external: options.external,
          logLevel: 'error',
        });
        const target = path.join(outdir, `${name}.js`);
        const temporary = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}`;
        fs.mkdirSync(outdir, { recursive: true });
        fs.writeFileSync(temporary, built.outputFiles[0].contents);
        fs.renameSync(temporary, target);
      }
    });
  },
});

module.exports = [besideTheHandler(BESIDE_THE_HANDLER)];
