/** Types of eslint-rules/layer-rule.js, for the TypeScript that imports it (test/lint/layer-rule.test.ts). */
import type { Linter } from 'eslint';

export declare const DOMAIN_ROOT: string;
export declare const WEB_STANDARD_DECLARATIONS: string;
export declare const FORBIDDEN_GLOBALS: { name: string; message: string }[];
export declare const domainLayerRule: Linter.Config[];
