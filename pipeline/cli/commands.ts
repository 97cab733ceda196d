/**
 * The command registry: one line per command module. Keep it sorted; each module exports
 * `register(program: Command): void`.
 */
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
];
