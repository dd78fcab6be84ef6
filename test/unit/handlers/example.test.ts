import { createConnectHandler } from '../../../handlers/connect';
import { createDefaultHandler } from '../../../handlers/default';
import { createObservability } from '../../../lib/runtime/lambda';
import { lambdaContext, webSocket } from '../../support/lambda-events';
import { createMemoryGatewayDeps } from '../../support/memory/deps';
import { claimsFor } from '../../support/tokens';

it('forwards a dice roll to games.commands once the connection is authenticated', async () => {
  const deps = createMemoryGatewayDeps();
  const wiring = { deps: () => deps, observability: createObservability() };
  const connect = createConnectHandler(wiring);
  const message = createDefaultHandler(wiring);
  const socket = webSocket();
  const token = deps.fakes.tokens.hs256(claimsFor('42', { username: 'Ann' }));

  const opened = await connect(socket.connect({ query: { token } }), lambdaContext('connect'));
  const reply = await message(
    socket.message({ type: 'system.authenticate', token }),
    lambdaContext('default'),
  );
  const roll = await message(
    socket.message({ type: 'games.command.bigger_dice.roll', room_id: 'r1' }),
    lambdaContext('default'),
  );

  expect(opened).toEqual({ statusCode: 200, body: '' });
  expect(JSON.parse(reply.body)).toMatchObject({ type: 'system.authenticated', user_id: '42' });
  expect(roll).toEqual({ statusCode: 200, body: '' });
  expect(deps.fakes.publisher.envelopes('games.commands')).toEqual([
    expect.objectContaining({ event_type: 'games.command.bigger_dice.roll', payload: { room_id: 'r1' } }),
  ]);
});
