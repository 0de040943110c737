// A pre-create hook for tests of refusals: uploads named "refuse" get its own answer (422, a body and
// a header of its own), "explode" makes it throw, "badid" makes it choose an upload id that is not one.
import type { HookHandler } from '../../hooks/types.ts';

export const gatekeeper: HookHandler = {
  name: 'gatekeeper',
  events: ['pre-create'],
  async invokeHook(request) {
    const name = request.Event.Upload.MetaData.name;
    if (name === 'explode') throw new Error('the gatekeeper fell over');
    if (name === 'badid') return { ChangeFileInfo: { ID: '../../etc' } };
    if (name === 'refuse')
      return {
        RejectUpload: true,
        HTTPResponse: { StatusCode: 422, Body: 'not this one', Header: { 'X-Why': 'named refuse' } },
      };
    return {};
  },
};
