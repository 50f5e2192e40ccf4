/**
 * Entry point of `pulumi up` (Pulumi.yaml `main`). The only file here with side effects:
 * it builds the program and exports the stack outputs.
 */
import { buildLevee } from './program';

const levee = buildLevee();

export const namespace = levee.outputs.namespace;
export const gatewayAddress = levee.outputs.gatewayAddress;
export const url = levee.outputs.url;
export const apiUrl = levee.outputs.apiUrl;
export const imagesUrl = levee.outputs.imagesUrl;
