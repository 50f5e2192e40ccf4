import net from 'node:net';
import { TEST_REDIS_URL } from './redis-url';

/**
 * Fails the whole run at once, with one clear line, when the Redis that the service
 * tests need cannot be reached — instead of dozens of tests timing out one by one.
 * Uses a raw socket so it depends on nothing but Node.
 */
export default async function globalSetup(): Promise<void> {
  const url = new URL(TEST_REDIS_URL);
  const host = url.hostname || '127.0.0.1';
  const port = Number(url.port || 6379);
  const password = decodeURIComponent(url.password);
  const username = decodeURIComponent(url.username);
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timed out after 3 s'));
    }, 3000);
    let data = '';
    socket.on('connect', () => {
      if (password) {
        const auth = username ? ['AUTH', username, password] : ['AUTH', password];
        socket.write(resp(auth));
      }
      socket.write(resp(['PING']));
    });
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('PONG') || data.startsWith('-')) {
        clearTimeout(timer);
        socket.end();
        resolve(data);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  }).catch((err: Error) => {
    throw new Error(
      `Levee's tests need a Redis server, but REDIS_URL=${TEST_REDIS_URL} could not be reached (${err.message}). ` +
        `Start one with: redis-server --daemonize yes --port 6379 --save "" --appendonly no — or point REDIS_URL at one.`,
    );
  });
  if (!reply.includes('PONG')) {
    throw new Error(`Levee's tests need a Redis server; REDIS_URL=${TEST_REDIS_URL} answered PING with: ${reply.trim()}`);
  }
}

/** Encodes a command in the Redis wire protocol (RESP). */
function resp(args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
}
