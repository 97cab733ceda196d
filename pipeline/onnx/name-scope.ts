/** Names unique against a set of used names: `base` when free, else `base_1`, `base_2`, ... (deterministic). */
export class NameScope {
  constructor(private readonly used: Set<string>) {}

  /** A name not used yet, derived from `base`; it counts as used from now on. */
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  /** Mark names as used. */
  reserve(...names: string[]): void {
    for (const n of names) this.used.add(n);
  }
}
