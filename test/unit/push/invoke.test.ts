import type { Credentials } from '../../../lib/aws/sigv4';
import { type AsyncInvoker, createAsyncInvoker, InvokeError } from '../../../lib/push/invoke';
import { type Answer, type StubServer, startStubServer, verifySignature } from './stub-aws';

const CREDENTIALS: Credentials = {
  accessKeyId: 'ASIATEST',
  secretAccessKey: 'secret',
  sessionToken: 'token',
};

describe('createAsyncInvoker', () => {
  let server: StubServer | undefined;
  let invoker: AsyncInvoker<{ connectionId: string }> | undefined;

  async function setup(answers: readonly Answer[], functionName = 'ws-gateway-dev-welcome') {
    server = await startStubServer(answers);
    invoker = createAsyncInvoker<{ connectionId: string }>({
      endpoint: server.url,
      region: 'eu-west-1',
      functionName,
      credentials: () => CREDENTIALS,
    });
    return { server, invoker };
  }

  afterEach(async () => {
    await invoker?.close();
    await server?.close();
    invoker = undefined;
    server = undefined;
  });

  it('resolves when Lambda accepts the event (202) and sends an Event invocation of the JSON payload', async () => {
    const { server, invoker } = await setup([{ status: 202 }]);

    await expect(invoker.invoke({ connectionId: 'abc=' })).resolves.toBeUndefined();

    const [req] = server.requests;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/2015-03-31/functions/ws-gateway-dev-welcome/invocations');
    expect(req?.headers['x-amz-invocation-type']).toBe('Event');
    expect(JSON.parse(req?.body.toString() ?? '')).toEqual({ connectionId: 'abc=' });
  });

  it('signs for the lambda service, the invocation type included', async () => {
    const fn = 'arn:aws:lambda:eu-west-1:123456789012:function:ws-gateway-prod-welcome';
    const { server, invoker } = await setup([{ status: 202 }], fn);

    await invoker.invoke({ connectionId: 'abc=' });

    const [req] = server.requests;
    expect(req?.url).toBe(`/2015-03-31/functions/${encodeURIComponent(fn)}/invocations`);
    expect(req?.headers.authorization).toContain('/eu-west-1/lambda/aws4_request');
    expect(req?.headers.authorization).toMatch(/SignedHeaders=[a-z0-9;-]*x-amz-invocation-type/);
    const { received, recomputed } = await verifySignature(req!, {
      service: 'lambda',
      region: 'eu-west-1',
      credentials: CREDENTIALS,
    });
    expect(received).toBe(recomputed);
  });

  it("rejects with a non-retriable InvokeError when the function does not exist (serverless-offline's 404)", async () => {
    const { invoker } = await setup([
      {
        status: 404,
        body: '{"Message":"Function not found: ws-gateway-dev-welcome","Type":"User"}',
        headers: { 'x-amzn-ErrorType': 'ResourceNotFoundException' },
      },
    ]);

    const err = await invoker.invoke({ connectionId: 'a' }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(InvokeError);
    expect(err).toMatchObject({ statusCode: 404, errorType: 'ResourceNotFoundException', retriable: false });
    expect((err as InvokeError).message).toContain('Function not found');
  });

  it('rejects with a retriable InvokeError on throttling', async () => {
    const { invoker } = await setup([
      { status: 429, headers: { 'x-amzn-errortype': 'TooManyRequestsException' } },
    ]);
    await expect(invoker.invoke({ connectionId: 'a' })).rejects.toMatchObject({
      name: 'InvokeError',
      retriable: true,
    });
  });

  it('treats a 200 (a synchronous invocation) as a failure: the event was not queued', async () => {
    const { invoker } = await setup([{ status: 200, body: 'null' }]);
    await expect(invoker.invoke({ connectionId: 'a' })).rejects.toMatchObject({
      statusCode: 200,
      retriable: false,
    });
  });

  it('rejects with a retriable InvokeError when the connection drops', async () => {
    const { invoker } = await setup(['reset']);
    await expect(invoker.invoke({ connectionId: 'a' })).rejects.toMatchObject({
      name: 'InvokeError',
      retriable: true,
    });
  });
});
