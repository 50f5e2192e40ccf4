/** In-cluster URLs the apps use to reach each other (Service names are stable). */
import { COMPONENTS, PORTS } from '../names';

export const QUEUE_REDIS_URL = `redis://${COMPONENTS.queueRedis}:${PORTS.redis}`;
export const CACHE_REDIS_URL = `redis://${COMPONENTS.cacheRedis}:${PORTS.redis}`;
export const MODEL_URL = `http://${COMPONENTS.model}:${PORTS.model}`;
