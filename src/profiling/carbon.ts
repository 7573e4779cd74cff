/**
 * Carbon from energy: gCO2e = kWh × PUE × grid intensity (gCO2e/kWh). Intensities are life-cycle
 * figures for electricity generation in 2023 from Ember (Yearly Electricity Data, processed by Our
 * World in Data, "Carbon intensity of electricity generation"); the world average, 481 g, is Ember's
 * 2023 global figure. The table is frozen: a user who knows their supplier's figure passes
 * `intensity`. PUE (data-centre overhead) defaults to 1.0 (a machine on a desk); cloud data centres
 * report 1.1–1.6.
 */
import { FrugalError } from '../errors.js';

export interface GridIntensity {
  /** ISO 3166-1 alpha-2 code, or `WORLD`. */
  readonly code: string;
  readonly country: string;
  readonly gCo2ePerKwh: number;
  readonly year: number;
  readonly source: string;
}

const OWID = 'Ember via Our World in Data, carbon intensity of electricity generation (life-cycle)';
const g = (code: string, country: string, gCo2ePerKwh: number, source = OWID): GridIntensity => Object.freeze({ code, country, gCo2ePerKwh, year: 2023, source });

/** Grid carbon intensity by country (gCO2e/kWh, 2023). */
export const GRID_INTENSITY: Readonly<Record<string, GridIntensity>> = Object.freeze(
  Object.fromEntries(
    [
      g('WORLD', 'World average', 481, 'Ember, global electricity generation'),
      g('AR', 'Argentina', 354),
      g('AT', 'Austria', 111),
      g('AU', 'Australia', 549),
      g('BA', 'Bosnia and Herzegovina', 600),
      g('BD', 'Bangladesh', 691),
      g('BE', 'Belgium', 138),
      g('BG', 'Bulgaria', 335),
      g('BO', 'Bolivia', 532),
      g('BR', 'Brazil', 98),
      g('CA', 'Canada', 170),
      g('CL', 'Chile', 291),
      g('CN', 'China', 582),
      g('CO', 'Colombia', 260),
      g('CR', 'Costa Rica', 53),
      g('CY', 'Cyprus', 534),
      g('CZ', 'Czechia', 450),
      g('DE', 'Germany', 381),
      g('DK', 'Denmark', 152),
      g('EC', 'Ecuador', 150),
      g('EE', 'Estonia', 417),
      g('EG', 'Egypt', 570),
      g('FI', 'Finland', 79),
      g('FR', 'France', 56),
      g('GE', 'Georgia', 168),
      g('GR', 'Greece', 337),
      g('HR', 'Croatia', 205),
      g('HU', 'Hungary', 204),
      g('IE', 'Ireland', 291),
      g('IN', 'India', 713),
      g('IR', 'Iran', 655),
      g('NO', 'Norway', 30, 'Ember, electricity generation emission intensity 2023'),
      g('PL', 'Poland', 662, 'Ember, electricity generation emission intensity 2023'),
      g('SE', 'Sweden', 41, 'Ember, electricity generation emission intensity 2023'),
      g('SV', 'El Salvador', 271),
    ].map((x) => [x.code, x]),
  ),
);

export const DEFAULT_REGION = 'WORLD';

export interface CarbonSettings {
  /** Region code used (`WORLD` by default), or `custom` when an intensity was given. */
  region: string;
  gCo2ePerKwh: number;
  pue: number;
  /** Where the intensity comes from (table source and year, or "given by the user"). */
  source: string;
  year: number | null;
}

export interface CarbonOptions {
  region?: string;
  /** gCO2e/kWh; overrides the region's figure. */
  intensity?: number;
  pue?: number;
}

/** Resolves region / intensity / PUE into settings; E_USAGE for an unknown region or a bad number. */
export function resolveCarbon(opts: CarbonOptions = {}): CarbonSettings {
  const pue = opts.pue ?? 1;
  if (!(Number.isFinite(pue) && pue >= 1)) throw new FrugalError('E_USAGE', `PUE must be a number ≥ 1 (1.0 for a machine outside a data centre), got ${opts.pue}`);
  if (opts.intensity !== undefined) {
    if (!(Number.isFinite(opts.intensity) && opts.intensity >= 0)) throw new FrugalError('E_USAGE', `grid intensity must be a non-negative number of gCO2e/kWh, got ${opts.intensity}`);
    return { region: opts.region?.toUpperCase() ?? 'custom', gCo2ePerKwh: opts.intensity, pue, source: 'given by the user', year: null };
  }
  const code = (opts.region ?? DEFAULT_REGION).toUpperCase();
  const row = GRID_INTENSITY[code];
  if (!row) {
    throw new FrugalError('E_USAGE', `no grid intensity for region '${opts.region}' in Frugal's table (known: ${Object.keys(GRID_INTENSITY).join(', ')}); pass the figure in gCO2e/kWh with --intensity`);
  }
  return { region: code, gCo2ePerKwh: row.gCo2ePerKwh, pue, source: `${row.source}, ${row.year}`, year: row.year };
}

/** Grams of CO2e for an energy in joules under the given settings. */
export function carbonGrams(joules: number, s: CarbonSettings): number {
  return (joules / 3.6e6) * s.pue * s.gCo2ePerKwh;
}

/** Joules → watt-hours. */
export const joulesToWh = (j: number): number => j / 3600;
