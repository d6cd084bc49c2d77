export { Simulator, startSimulator, splitParts } from "./simulator";
export type { SimulatorOptions, InjectMo, RecordedPush, RecordedRequest } from "./simulator";
export type { SimAccountConfig } from "./accounts";
export type { PushVariant, PushStyle, TimeFormat, MobileFormat } from "./variants";
export type { PushCharset } from "./charset";
