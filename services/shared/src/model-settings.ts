import { z } from 'zod';
import { MODEL_APIS } from './model-client';

/** Which model API the worker (renders) and the gateway (the style catalog) speak, and how to authenticate. */
export const modelApiSettings = {
  /** `levee` (POST /v1/render, GET /v1/styles) or `openai-images` (POST /v1/images/generations). */
  MODEL_API: z.enum(MODEL_APIS, { error: `must be one of ${MODEL_APIS.join(', ')}` }).default('levee'),
  /** openai-images: the `model` of every request. */
  MODEL_NAME: z.string().min(1).max(256).default('levee-stand-in'),
  /** Sent as `Authorization: Bearer <key>` when set (from a Secret). */
  MODEL_API_KEY: z.string().min(1).optional(),
};

export interface Style {
  readonly id: string;
  readonly name: string;
  readonly description?: string;
}

const STYLE_ID = /^[a-z0-9-]{1,64}$/;

/**
 * MODEL_STYLES: the style catalog when the model has none (openai-images): comma-separated
 * style ids (`sunset,ocean`), or a JSON array of `{id, name, description?}`.
 */
export const modelStylesSetting = z
  .string()
  .optional()
  .transform((raw, ctx): readonly Style[] | undefined => {
    if (raw === undefined) return undefined;
    const allowed = 'must be comma-separated style ids (a-z, 0-9 and "-", e.g. sunset,ocean) or a JSON array of {"id","name","description"}';
    if (raw.trim().startsWith('[')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        ctx.addIssue({ code: 'custom', message: allowed });
        return z.NEVER;
      }
      const styles = z.array(z.strictObject({ id: z.string().regex(STYLE_ID), name: z.string().min(1).max(200), description: z.string().max(1000).optional() })).min(1).safeParse(parsed);
      if (!styles.success) {
        ctx.addIssue({ code: 'custom', message: allowed });
        return z.NEVER;
      }
      return styles.data;
    }
    const ids = raw.split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0 || !ids.every((id) => STYLE_ID.test(id))) {
      ctx.addIssue({ code: 'custom', message: allowed });
      return z.NEVER;
    }
    return ids.map((id) => ({ id, name: id }));
  });
