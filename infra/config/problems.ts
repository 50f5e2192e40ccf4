/**
 * How a configuration problem is reported: {@link ConfigError} lists every problem at once,
 * and each message quotes the setting as given (`show`).
 */
import { SettingName, settingLabel } from './settings';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid Levee configuration (nothing was written):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** A setting as the user wrote it (or as its default reads), for messages: `label = "value"`. */
export function show(name: SettingName, value: string | undefined): string {
  return `${settingLabel(name)} = ${JSON.stringify(value ?? '')}`;
}
