import { describe, expect, it } from 'vitest';
import { createProgress } from '../../pipeline/zoo/progress.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, s: { isTTY, columns: 100, write: (c: string) => { out.push(c); return true; } } };
}

describe('download progress', () => {
  it('prints one plain line per 10 % when stderr is not a terminal', () => {
    const { out, s } = sink(false);
    let t = 0;
    const p = createProgress('pack.zip', s, () => t);
    const total = 100 * 1024 * 1024;
    for (let r = 0; r <= total; r += 1024 * 1024) { t += 10; p.update(r, total); }
    t = 2000;
    p.done();
    expect(out).toHaveLength(11);
    expect(out[0]).toBe('pack.zip: 0% (0.0 of 100.0 MB)\n');
    expect(out[5]).toBe('pack.zip: 50% (50.0 of 100.0 MB)\n');
    expect(out[10]).toBe('pack.zip: 100% (100.0 MB in 2.0 s)\n');
    expect(out.join('')).not.toContain('\r');
  });

  it('counts megabytes when the size is unknown', () => {
    const { out, s } = sink(false);
    const p = createProgress('x.zip', s, () => 0);
    for (let r = 0; r <= 25 * 1024 * 1024; r += 1024 * 1024) p.update(r, null);
    expect(out).toEqual(['x.zip: 10.0 MB\n', 'x.zip: 20.0 MB\n']);
  });

  it('redraws a bar in place on a terminal, at most every 100 ms', () => {
    const { out, s } = sink(true);
    let t = 0;
    const p = createProgress('pack.zip', s, () => t);
    for (let i = 0; i <= 50; i++) { t = i * 20; p.update(i * 2, 100); } // 1 s of updates every 20 ms
    expect(out.length).toBe(11); // t = 0, 100, ..., 1000
    expect(out.every((l) => l.startsWith('\r'))).toBe(true);
    expect(out.at(-1)).toContain(' 100.0%');
    expect(out.at(-1)).toContain('[##########');
    p.done();
    expect(out.at(-1)).toBe('\n');
  });

  it('ends a half-drawn bar on interrupt so the error gets its own line', () => {
    const { out, s } = sink(true);
    const p = createProgress('pack.zip', s, () => 0);
    p.update(1, 10);
    p.interrupt();
    expect(out.at(-1)).toBe('\n');
    const quiet = sink(true);
    createProgress('pack.zip', quiet.s).interrupt();
    expect(quiet.out).toEqual([]);
  });
});
