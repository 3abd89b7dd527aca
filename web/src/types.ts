/** What the API sends, as openapi.yaml describes it (types generated at build time; nothing is emitted). */
import type { components } from '../../src/generated/openapi.js';

type Schemas = components['schemas'];
export type LiveHello = Schemas['LiveHello'];
export type LiveSnapshot = Schemas['LiveSnapshot'];
export type LiveSession = Schemas['LiveSession'];
export type LiveSample = Schemas['LiveSample'];
export type Pool = Schemas['Pool'];
export type Pipeline = Schemas['Pipeline'];
export type PipelineList = Schemas['PipelineList'];
export type Problem = Schemas['Problem'];
