// The protocol core: everything about the platform, nothing about Node-RED.
export * from "./clock";
export * from "./codes";
export * from "./errors";
export * from "./i18n";
export * from "./numbers";
export * from "./prepare";
export * from "./props";
export * from "./push";
export * from "./reassembler";
export * from "./recent";
export * from "./redact";
export * from "./replies";
export * from "./scheduler";
export * from "./text";
export * from "./time";
export * from "./client";
