// convert.mjs writes account/postcode/fr.tsv, the French postcode table that
// the Go package account/postcode embeds, to standard output. Run it through
// `make postcodes` (which first runs `npm ci` here); same codes-postaux version
// in, byte-identical file out.
//
// Source: the npm package codes-postaux, pinned in package.json and
// package-lock.json. Its codes-postaux.json has one entry per (postcode,
// commune): {codePostal, codeCommune (INSEE), nomCommune, libelleAcheminement}.
// Note that, despite its name, it is not La Poste's "base officielle des codes
// postaux": its README says it is built from INSEE's Code Officiel Géographique
// and the DGFiP's FIMOCT (and the package is MIT-licensed).
//
// Output: a comment line starting with '#', then one line per postcode, sorted
// by postcode, `postcode<TAB>city<TAB>region`, UTF-8 (NFC), LF line endings.
//
// How a line is built when a postcode covers several entries:
//   1. Label: the most frequent libellé d'acheminement (delivery label) among
//      the postcode's entries, labels compared ignoring punctuation ("LE
//      CHAMBON-FEUGEROLLES" and "LE CHAMBON FEUGEROLLES" count as one); ties
//      go to the alphabetically first label (plain code-unit order, not locale
//      order, so the result never depends on the machine). Most multi-commune
//      postcodes give each commune its own label, so in practice this
//      tie-break often decides (01090 -> Francheleins, not Montmerle-sur-Saône).
//   2. City: the delivery label is upper case without accents ("SAINT DENIS"),
//      so the city written out is the official commune name (nomCommune,
//      "Saint-Denis") of an entry carrying that label, with a municipal
//      arrondissement suffix dropped ("Paris 1er Arrondissement" -> "Paris").
//      Among the label's entries, names that spell the label (ignoring case,
//      accents and punctuation) win; then the most frequent name; then the
//      alphabetically first.
//   3. Region: from the département of that commune's INSEE code (2 characters,
//      3 for overseas 97x; Corsica's 2A/2B are "Corse"), with the static table
//      below: the 101 départements and their 18 regions, plus
//      Saint-Pierre-et-Miquelon (975, an overseas collectivity, not a
//      département) under its own name.
// Monaco (980xx) is not French and is skipped; codes-postaux has no 980xx
// entry anyway. Any other département code missing from the table stops the
// script with an error, so a new package version cannot slip in rows with no
// region.

import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'

const require = createRequire(import.meta.url)

const regions = {
  'Auvergne-Rhône-Alpes': ['01', '03', '07', '15', '26', '38', '42', '43', '63', '69', '73', '74'],
  'Bourgogne-Franche-Comté': ['21', '25', '39', '58', '70', '71', '89', '90'],
  Bretagne: ['22', '29', '35', '56'],
  'Centre-Val de Loire': ['18', '28', '36', '37', '41', '45'],
  Corse: ['2A', '2B'],
  'Grand Est': ['08', '10', '51', '52', '54', '55', '57', '67', '68', '88'],
  'Hauts-de-France': ['02', '59', '60', '62', '80'],
  'Île-de-France': ['75', '77', '78', '91', '92', '93', '94', '95'],
  Normandie: ['14', '27', '50', '61', '76'],
  'Nouvelle-Aquitaine': ['16', '17', '19', '23', '24', '33', '40', '47', '64', '79', '86', '87'],
  Occitanie: ['09', '11', '12', '30', '31', '32', '34', '46', '48', '65', '66', '81', '82'],
  'Pays de la Loire': ['44', '49', '53', '72', '85'],
  "Provence-Alpes-Côte d'Azur": ['04', '05', '06', '13', '83', '84'],
  Guadeloupe: ['971'],
  Martinique: ['972'],
  Guyane: ['973'],
  'La Réunion': ['974'],
  Mayotte: ['976']
}
const collectivities = {'Saint-Pierre-et-Miquelon': ['975']}

const regionOf = new Map()
for (const [region, depts] of Object.entries({...regions, ...collectivities})) {
  for (const dept of depts) {
    if (regionOf.has(dept)) throw new Error(`département ${dept} listed twice`)
    regionOf.set(dept, region)
  }
}
if (Object.keys(regions).length !== 18 || regionOf.size !== 101 + 1) {
  throw new Error('the region table must hold 18 regions and 101 départements')
}

// Refuse to run on anything but the pinned version.
const pinned = JSON.parse(readFileSync(new URL('package.json', import.meta.url), 'utf8')).dependencies['codes-postaux']
const installed = require('codes-postaux/package.json').version
if (installed !== pinned) {
  throw new Error(`codes-postaux ${installed} is installed but package.json pins ${pinned}: run npm ci`)
}

const entries = JSON.parse(readFileSync(require.resolve('codes-postaux/codes-postaux.json'), 'utf8'))

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0)

// fold reduces a name or label to upper-case ASCII words, so that
// "Saint-Rémy-de-Provence" and "SAINT REMY DE PROVENCE" compare equal.
const fold = s => s.normalize('NFD').replace(/\p{M}/gu, '')
  .replace(/Œ/g, 'OE').replace(/œ/g, 'oe').replace(/Æ/g, 'AE').replace(/æ/g, 'ae')
  .toUpperCase().replace(/[^A-Z0-9]+/g, ' ').trim()

const cityName = e => e.nomCommune.normalize('NFC').replace(/ \d+(?:er|e) Arrondissement$/, '')

const deptOf = codeCommune => (codeCommune.startsWith('97') ? codeCommune.slice(0, 3) : codeCommune.slice(0, 2))

// mostFrequent returns the most frequent value, ties going to the first in
// code-unit order.
function mostFrequent(values) {
  const counts = new Map()
  for (const v of values) counts.set(v, (counts.get(v) || 0) + 1)
  return [...counts].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]))[0][0]
}

const byPostcode = new Map()
for (const e of entries) {
  if (!/^\d{5}$/.test(e.codePostal)) throw new Error(`bad postcode ${JSON.stringify(e)}`)
  if (e.codePostal.startsWith('980')) continue // Monaco
  if (!byPostcode.has(e.codePostal)) byPostcode.set(e.codePostal, [])
  byPostcode.get(e.codePostal).push(e)
}

const lines = []
for (const postcode of [...byPostcode.keys()].sort(cmp)) {
  const all = byPostcode.get(postcode)
  const label = mostFrequent(all.map(e => fold(e.libelleAcheminement)))
  const labelled = all.filter(e => fold(e.libelleAcheminement) === label)
  const spelling = labelled.filter(e => fold(cityName(e)) === label)
  const candidates = spelling.length > 0 ? spelling : labelled
  const city = mostFrequent(candidates.map(cityName))
  const commune = candidates.filter(e => cityName(e) === city).map(e => e.codeCommune).sort(cmp)[0]
  const region = regionOf.get(deptOf(commune))
  if (!region) throw new Error(`postcode ${postcode}: no region for commune ${commune}`)
  if (/[\t\r\n]/.test(city) || city === '') throw new Error(`postcode ${postcode}: bad city ${JSON.stringify(city)}`)
  lines.push(`${postcode}\t${city}\t${region}\n`)
}

process.stdout.write(`# postcode\tcity\tregion. Generated from the npm package codes-postaux@${installed} by scripts/postcodes/convert.mjs (make postcodes). Do not edit.\n`)
process.stdout.write(lines.join(''))
