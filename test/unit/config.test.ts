import { ConfigError, loadConfig } from '../../lib/config';

describe('loadConfig', () => {
  it('applies the contract defaults when nothing is set', () => {
    const c = loadConfig({});
    expect(c.ws.port).toBe(9998);
    expect(c.ws.healthPort).toBe(9997);
    expect(c.ws.rateLimitBurst).toBe(100);
    expect(c.ws.rateLimitPerSec).toBe(50);
    expect(c.ws.maxMessageSize).toBe(65536);
    expect(c.kafka.consumerGroup).toBe('ws_gateway');
    expect(c.kafka.brokers).toEqual(['kafka:9092']);
    expect(c.redis.url).toBe('redis://app:redis_secret_password@redis:6379/0');
    expect(c.auth.allowUnverified).toBe(false);
    expect(c.disconnectNotifyRooms).toBe(true);
  });

  it('lets REDIS_URL and KAFKA_BROKERS override the component variables', () => {
    const c = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:7000',
      REDIS_HOST: 'x',
      KAFKA_BROKERS: 'a:1, b:2',
      KAFKA_HOST: 'k',
    });
    expect(c.redis.url).toBe('redis://127.0.0.1:7000');
    expect(c.kafka.brokers).toEqual(['a:1', 'b:2']);
  });

  it('URL-encodes the Redis password built from parts', () => {
    const c = loadConfig({ REDIS_PASSWORD: 'p@ss/word', REDIS_HOST: 'h' });
    expect(c.redis.url).toBe('redis://app:p%40ss%2Fword@h:6379/0');
  });

  it.each([
    ['WS_PORT', 'abc'],
    ['WS_PORT', '70000'],
    ['WS_HEALTH_PORT', '-1'],
    ['WS_RATE_LIMIT_BURST', '0'],
    ['WS_RATE_LIMIT_PER_SEC', 'fast'],
    ['WS_MAX_MESSAGE_SIZE', '1.5'],
    ['AUTH_ALLOW_UNVERIFIED', 'maybe'],
    ['KAFKA_BROKERS', 'nohostport'],
    ['REDIS_URL', 'http://x'],
    ['KAFKA_START_POSITION', 'middle'],
    ['LOG_LEVEL', 'loud'],
  ])('names %s when its value %p is invalid', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^${variable}: `));
  });

  it('returns a frozen object', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.ws)).toBe(true);
  });

  it('accepts fractional refill rates', () => {
    expect(loadConfig({ WS_RATE_LIMIT_PER_SEC: '0.5' }).ws.rateLimitPerSec).toBe(0.5);
  });
});
