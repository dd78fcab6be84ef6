/**
 * Evaluates kafkajs when the importing module loads. The container loads kafkajs on first use
 * (lib/runtime/container.ts), so that functions which never publish never pay for it; the functions
 * whose invocations nearly all publish (`$default`, `$disconnect`) import this module so that they
 * pay for it during the Lambda init phase, as before, not inside their first invocation
 * (docs/architecture.md, "Cold start").
 */
import 'kafkajs';
