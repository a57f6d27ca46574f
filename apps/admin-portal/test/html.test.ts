import t from 'tap';
import { Html, badge, esc, facts, html, joinHtml, money, table } from '../src/pages/html.js';

t.test('html escapes every value unless it is Html', async (t) => {
  const name = `<script>alert("x")</script> & 'y'`;
  const escaped = '&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;y&#39;';
  t.equal(html`<td title="${name}">${name}</td>`.toString(), `<td title="${escaped}">${escaped}</td>`);
  t.equal(
    html`<b>${html`<i>${'<'}</i>`}</b>`.toString(),
    '<b><i>&#60;</i></b>',
    'nested markup kept, its values escaped',
  );
  t.equal(html`${esc('<b>')}`.toString(), '&#60;b&#62;', 'esc is Html: not escaped twice');
});

t.test('lists are joined, nothing shows as nothing', async (t) => {
  t.equal(html`<ul>${['a', 'b'].map((x) => html`<li>${x}</li>`)}</ul>`.toString(), '<ul><li>a</li><li>b</li></ul>');
  t.equal(html`${null}${undefined}${false}${0}`.toString(), '0');
  t.equal(joinHtml([html`<b>1</b>`, '<2>'], html`<br>`).toString(), '<b>1</b><br>&#60;2&#62;');
});

t.test('a string is never markup: the helpers escape what they are given', async (t) => {
  t.notOk(('<p>' as unknown) instanceof Html);
  t.match(
    table('T', [{ head: '<h>', cell: (r: string) => esc(r) }], ['<r>'], 'none').toString(),
    /&#60;h&#62;.*&#60;r&#62;/s,
  );
  t.equal(table('T', [], [], '<empty>').toString(), '<p class="empty" role="status">&#60;empty&#62;</p>');
  t.match(facts([['<k>', html``]]).toString(), /<dt>&#60;k&#62;<\/dt><dd><span class="muted">—<\/span><\/dd>/);
  t.equal(badge('past_due', '<off>').toString(), '<span class="badge b-warn">&#60;off&#62;</span>');
  t.equal(money(499, 'USD').toString(), '$4.99');
  t.equal(money(-500, 'JPY').toString(), '−¥500');
});
