import t from 'tap';
import { decideRoleAction } from '../src/grants.js';

t.test('the role is held while any grant lives', async (t) => {
  t.equal(decideRoleAction({ liveGrants: 1, heldBeforeUs: false, heldNow: false }), 'grant');
  t.equal(decideRoleAction({ liveGrants: 2, heldBeforeUs: false, heldNow: true }), 'none');
  t.equal(decideRoleAction({ liveGrants: 1, heldBeforeUs: true, heldNow: true }), 'none');
  t.equal(decideRoleAction({ liveGrants: 1, heldBeforeUs: false, forceRevoke: true, heldNow: false }), 'grant');
});

t.test('revoked when the last grant ends, unless held before us', async (t) => {
  t.equal(decideRoleAction({ liveGrants: 0, heldBeforeUs: false, heldNow: true }), 'revoke');
  t.equal(decideRoleAction({ liveGrants: 0, heldBeforeUs: false, heldNow: false }), 'none');
  t.equal(decideRoleAction({ liveGrants: 0, heldBeforeUs: true, heldNow: true }), 'none');
  t.equal(decideRoleAction({ liveGrants: 0, heldBeforeUs: true, forceRevoke: true, heldNow: true }), 'revoke');
});
