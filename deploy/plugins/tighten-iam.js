/**
 * Two corrections to the IAM osls generates, applied to the final template (after `resources` are
 * merged, before it is written):
 *
 * 1. A `websocket` event makes osls grant `execute-api:ManageConnections` on
 *    `arn:…:execute-api:*:*:*\/@connections/*` — every WebSocket API in the account. serverless.yml
 *    grants it on this API's stage, so the account-wide statement is removed.
 * 2. The Kafka event source mappings depend only on the role; policies attached to the role from
 *    `resources` (deploy/kafka-source-msk.yml's IAM-auth permissions) must exist before Lambda
 *    starts polling, so every mapping also depends on them.
 */

const ROLE = 'IamRoleLambdaExecution';

const asArray = (value) => (Array.isArray(value) ? value : [value]);

function isAccountWideManageConnections(statement) {
  const actions = asArray(statement.Action);
  if (!actions.includes('execute-api:ManageConnections')) return false;
  return asArray(statement.Resource).some((resource) => {
    const arn = typeof resource === 'string' ? resource : resource?.['Fn::Sub'];
    return typeof arn === 'string' && arn.includes(':execute-api:*:*:*/');
  });
}

const attachesToRole = (resource) =>
  resource.Type === 'AWS::IAM::Policy' &&
  asArray(resource.Properties?.Roles ?? []).some((role) => role?.Ref === ROLE);

class TightenIam {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:aws:package:finalize:saveServiceState': () => this.tighten(),
    };
  }

  tighten() {
    const resources = this.serverless.service.provider.compiledCloudFormationTemplate.Resources;
    for (const policy of resources[ROLE]?.Properties?.Policies ?? []) {
      const document = policy.PolicyDocument;
      document.Statement = document.Statement.filter((s) => !isAccountWideManageConnections(s));
    }
    const rolePolicies = Object.keys(resources).filter((id) => attachesToRole(resources[id]));
    if (rolePolicies.length === 0) return;
    for (const resource of Object.values(resources)) {
      if (resource.Type !== 'AWS::Lambda::EventSourceMapping') continue;
      const dependsOn = asArray(resource.DependsOn ?? []);
      resource.DependsOn = [...new Set([...dependsOn, ...rolePolicies])];
    }
  }
}

module.exports = TightenIam;
