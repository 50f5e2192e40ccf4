import { Construct } from 'constructs';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, PORTS } from '../names';
import { AppWorkload } from './app-workload';
import { appImage, httpProbe, plainEnv } from './pod';
import { httpGracePeriodSeconds } from './termination';

export interface ModelProps {
  readonly config: LeveeConfig;
}

/** The image model API (cluster-internal), called by the gateway (styles) and the workers (renders). */
export class Model extends AppWorkload {
  constructor(scope: Construct, id: string, props: ModelProps) {
    const { config } = props;
    super(scope, id, {
      config,
      name: COMPONENTS.model,
      component: 'model',
      sizing: config.model,
      image: appImage(config, COMPONENTS.model),
      ports: [{ name: 'http', port: PORTS.model }],
      env: plainEnv({ PORT: PORTS.model }),
      livenessProbe: httpProbe('/healthz', PORTS.model, { period: 10, failures: 3, initialDelay: 5 }),
      readinessProbe: httpProbe('/readyz', PORTS.model, { period: 5, failures: 2 }),
      preStopSeconds: config.shutdown.preStopSeconds,
      terminationGracePeriodSeconds: httpGracePeriodSeconds(config, false),
    });
  }
}
