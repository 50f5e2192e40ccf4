/** The four app images: which Dockerfile builds which manifest image. */
import { COMPONENTS } from '../../infra';

export { appImageTag } from '../../infra';

export const APP_IMAGES = (['gateway', 'media', 'model', 'worker'] as const).map((service) => ({
  service,
  component: COMPONENTS[service],
  dockerfile: `services/${service}/Dockerfile`,
}));
