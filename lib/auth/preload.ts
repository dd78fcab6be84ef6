/**
 * Evaluates jsonwebtoken when the importing module loads. The verifier loads it on the first token
 * it checks (lib/auth/verifier.ts), so that functions which never see a token never pay for it;
 * `$connect`, where nearly every upgrade carries a token or a session cookie, imports this module so
 * that it pays for it during the Lambda init phase, not inside its first invocation
 * (docs/architecture.md, "Cold start").
 */
import 'jsonwebtoken';
