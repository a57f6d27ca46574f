import t from 'tap';
import { isUuid } from '../src/ids.js';

t.test('a UUID names something of ours; anything else does not', async (t) => {
  t.ok(isUuid('0b6f1f8e-3c1a-4d7e-9a2b-5c6d7e8f9a0b'));
  t.ok(isUuid('0B6F1F8E-3C1A-4D7E-9A2B-5C6D7E8F9A0B'), 'case does not matter');
  for (const bad of [
    '',
    'ORD-1',
    '0b6f1f8e3c1a4d7e9a2b5c6d7e8f9a0b',
    '0b6f1f8e-3c1a-4d7e-9a2b-5c6d7e8f9a0b ',
    "' or 1=1 --",
  ]) {
    t.notOk(isUuid(bad), JSON.stringify(bad));
  }
});
