/**
 * The webhook URL policy (services/shared/src/webhook-url.ts): every class of address the
 * cluster must not call, in IPv4 and IPv6 and their mapped forms; scheme, credentials and
 * ports; names checked against every address they resolve to; and the connection-time lookup
 * that refuses a name re-pointed after the submit (DNS rebinding).
 */
import http from 'node:http';
import type { LookupAddress } from 'node:dns';
import { checkWebhookUrl, checkWebhookUrlSyntax, forbiddenAddress, guardedLookup, parseCidrs, STRICT_WEBHOOK_POLICY, WebhookUrlError, WebhookUrlPolicy } from '../../services/shared/src/webhook-url';

const strict = STRICT_WEBHOOK_POLICY;

describe('forbiddenAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'], // the cloud metadata address
    ['169.254.0.1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.254', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['fd00:ec2::254', 'uniqueLocal'], // the AWS IPv6 metadata address
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'], // IPv4-mapped forms are judged as their IPv4 address
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['::ffff:100.64.1.1', 'carrierGradeNat'],
    ['::ffff:a9fe:a9fe', 'linkLocal'], // 169.254.169.254, written in hex
    ['64:ff9b::a9fe:a9fe', 'rfc6052'], // NAT64 of the metadata address
    ['2002:a9fe:a9fe::1', '6to4'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
  ])('refuses %s (%s)', (address, range) => {
    expect(forbiddenAddress(address, strict)).toBe(`${address} is a ${range} address`);
  });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8', '172.32.0.1', '100.128.0.1', '11.0.0.1'])('allows the public address %s', (address) => {
    expect(forbiddenAddress(address, strict)).toBeUndefined();
  });

  it('allows what WEBHOOK_ALLOWED_CIDRS names, and only that', () => {
    const policy = { allowedCidrs: parseCidrs('10.20.0.0/16, fd00:1::/64, 127.0.0.1') };
    expect(forbiddenAddress('10.20.3.4', policy)).toBeUndefined();
    expect(forbiddenAddress('::ffff:10.20.3.4', policy)).toBeUndefined();
    expect(forbiddenAddress('fd00:1::7', policy)).toBeUndefined();
    expect(forbiddenAddress('127.0.0.1', policy)).toBeUndefined();
    expect(forbiddenAddress('10.21.0.1', policy)).toMatch(/private/);
    expect(forbiddenAddress('127.0.0.2', policy)).toMatch(/loopback/);
    expect(forbiddenAddress('169.254.169.254', policy)).toMatch(/linkLocal/);
    expect(() => parseCidrs('10.0.0.0/8,nonsense')).toThrow('"nonsense" is neither');
  });
});

describe('checkWebhookUrlSyntax', () => {
  const refused = (url: string, policy: WebhookUrlPolicy = strict) => {
    try {
      checkWebhookUrlSyntax(url, policy);
    } catch (err) {
      expect(err).toBeInstanceOf(WebhookUrlError);
      return (err as Error).message;
    }
    throw new Error(`${url} was accepted`);
  };

  it('accepts public https URLs on 443 and 8443', () => {
    expect(checkWebhookUrlSyntax('https://hooks.example.com/levee?x=1', strict).hostname).toBe('hooks.example.com');
    expect(checkWebhookUrlSyntax('https://hooks.example.com:8443/levee', strict).port).toBe('8443');
    expect(checkWebhookUrlSyntax('https://[2606:4700:4700::1111]/x', strict).hostname).toBe('[2606:4700:4700::1111]');
  });

  it('refuses http, other schemes, credentials, other ports, and literal non-public addresses in every spelling', () => {
    expect(refused('http://hooks.example.com/x')).toBe('webhookUrl must use https (not http)');
    expect(refused('ftp://hooks.example.com/x')).toBe('webhookUrl must use https (not ftp)');
    expect(refused('file:///etc/passwd')).toBe('webhookUrl must use https (not file)');
    expect(refused('hooks.example.com/x')).toBe('webhookUrl must be an absolute URL (https://…)');
    expect(refused('https://user:secret@hooks.example.com/x')).toBe('webhookUrl must not carry credentials');
    expect(refused('https://user@hooks.example.com/x')).toBe('webhookUrl must not carry credentials');
    expect(refused('https://hooks.example.com:6379/x')).toBe('webhookUrl port 6379 is not allowed (allowed: 443, 8443)');
    expect(refused('https://127.0.0.1/x')).toMatch(/non-public address: 127\.0\.0\.1 is a loopback address/);
    expect(refused('https://2130706433/x')).toMatch(/127\.0\.0\.1 is a loopback/); // decimal
    expect(refused('https://0x7f.1/x')).toMatch(/127\.0\.0\.1 is a loopback/); // hex, short form
    expect(refused('https://169.254.169.254/latest/meta-data/')).toMatch(/linkLocal/);
    expect(refused('https://[::1]/x')).toMatch(/::1 is a loopback/);
    expect(refused('https://[::ffff:169.254.169.254]/x')).toMatch(/linkLocal/);
    expect(refused('https://[fd00:ec2::254]/x')).toMatch(/uniqueLocal/);
    expect(refused('https://100.100.100.200/x')).toMatch(/carrierGradeNat/); // Alibaba's metadata address
    expect(refused(`https://hooks.example.com/${'x'.repeat(2048)}`)).toBe('webhookUrl is longer than 2048 characters');
  });

  it('WEBHOOK_ALLOW_HTTP allows http and port 80; WEBHOOK_ALLOWED_PORTS other ports', () => {
    const open = { allowedCidrs: [], allowHttp: true, allowedPorts: [443, 8443, 9000] };
    expect(checkWebhookUrlSyntax('http://hooks.example.com/x', open).protocol).toBe('http:');
    expect(checkWebhookUrlSyntax('https://hooks.example.com:9000/x', open).port).toBe('9000');
    expect(refused('http://hooks.example.com:8080/x', open)).toMatch(/port 8080 is not allowed \(allowed: 443, 8443, 9000, 80\)/);
  });
});

describe('checkWebhookUrl (with DNS)', () => {
  const resolving = (addresses: string[]) => async (): Promise<LookupAddress[]> => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

  it('refuses a name when any address it resolves to is not public', async () => {
    await expect(checkWebhookUrl('https://hooks.example.com/x', strict, resolving(['93.184.216.34']))).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('https://hooks.example.com/x', strict, resolving(['93.184.216.34', '10.0.0.5']))).rejects.toThrow('webhookUrl host hooks.example.com resolves to a non-public address: 10.0.0.5 is a private address');
    await expect(checkWebhookUrl('https://metadata.example/x', strict, resolving(['::ffff:169.254.169.254']))).rejects.toThrow(/linkLocal/);
    await expect(checkWebhookUrl('https://nothing.example/x', strict, resolving([]))).rejects.toThrow('resolves to no address');
  });

  it('refuses a name that does not resolve, or not in time', async () => {
    const fail = async () => Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }));
    await expect(checkWebhookUrl('https://nowhere.invalid/x', strict, fail)).rejects.toThrow('webhookUrl host nowhere.invalid does not resolve (ENOTFOUND)');
    const never = () => new Promise<LookupAddress[]>(() => undefined);
    await expect(checkWebhookUrl('https://slow.example/x', strict, never, 50)).rejects.toThrow('does not resolve (ETIMEOUT)');
  });

  it('resolves through the system resolver by default: localhost is loopback', async () => {
    await expect(checkWebhookUrl('https://localhost/x', strict)).rejects.toThrow(/localhost resolves to a non-public address: .* loopback/);
  });
});

describe('guardedLookup (connection time)', () => {
  it('refuses to connect to a name that resolves to a non-public address, even when the URL passed the syntax check', async () => {
    const server = http.createServer((_req, res) => res.end('reached'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const policy: WebhookUrlPolicy = { allowedCidrs: [], allowHttp: true, allowedPorts: [port] };
    // "localhost" is a name: the syntax check cannot know where it points.
    expect(() => checkWebhookUrlSyntax(`http://localhost:${port}/`, policy)).not.toThrow();
    const agent = new http.Agent({ lookup: guardedLookup(policy) });
    const err = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
      http.get(`http://localhost:${port}/`, { agent }, () => reject(new Error('the request reached the server'))).on('error', resolve);
    });
    expect(err.code).toBe('EWEBHOOKADDRESS');
    expect(err.message).toMatch(/localhost resolves to a non-public address: .* loopback/);
    // Allowed by CIDR: it connects.
    const allowed = new http.Agent({ lookup: guardedLookup({ allowedCidrs: parseCidrs('127.0.0.0/8,::1') }) });
    const body = await new Promise<string>((resolve, reject) => {
      http.get(`http://localhost:${port}/`, { agent: allowed, family: 4 }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    expect(body).toBe('reached');
    agent.destroy();
    allowed.destroy();
    server.close();
  });
});
