"""The reviewer's HTML form: one self-contained file that works offline (no network, nothing fetched).

Every text a model or a data file wrote reaches the page only as JSON inside a `<script type=
"application/json">` block, with `<`, `>` and `&` written as \\u escapes (so no `</script>` can end it), and
the script puts it on the page with `textContent` alone: nothing in it is ever parsed as HTML. Progress is
kept in the browser's local storage under the export id and rater; "Save ratings CSV" downloads a file
`harness review import` reads. The page holds codes only, never a variant's name.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from harness.review import DIMENSIONS

RATING_COLUMNS = ("export", "rater", "item", "code", *DIMENSIONS, "comment")  # what import reads back
PAIR_COLUMNS = ("export", "rater", "item", "left", "right", "choice", "comment")
CHOICES = ("left", "right", "tie")


@dataclass(frozen=True)
class ReviewItem:
    item: str
    input: str
    reference: str
    outputs: tuple[tuple[str, str], ...]  # (code, output text), in the key's order (not a rater's)


CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:12px 20px;color:#222}
header{display:flex;gap:16px;align-items:baseline;flex-wrap:wrap;border-bottom:1px solid #ccc;padding-bottom:6px}
h1{font-size:20px;margin:0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:8px;margin:4px 0;max-height:320px;overflow:auto}
.outputs{display:grid;gap:12px}.pairwise .outputs{grid-template-columns:1fr 1fr}
.output{border:1px solid #ccc;border-radius:6px;padding:8px}
.dim{display:flex;gap:6px;align-items:center;margin:3px 0;padding:2px 4px;border-radius:4px}
.dim span{width:80px}.dim.active{outline:2px solid #2a6fdb}
button{font:inherit;padding:3px 10px;border:1px solid #888;border-radius:4px;background:#fff;cursor:pointer}
button.on{background:#2a6fdb;color:#fff;border-color:#2a6fdb}
textarea{width:100%;box-sizing:border-box;min-height:40px;font:inherit}
nav{display:flex;gap:8px;margin:12px 0;align-items:center}
.keys{color:#555;font-size:13px}
"""

JS = r"""
(function(){
const D=JSON.parse(document.getElementById('review-data').textContent);
const DIMS=D.dimensions, PAIR=D.mode==='pairwise', STORE='harness-review:'+D.export+':'+D.rater;
let state={answers:{},at:0}, cursor=0;
try{const kept=JSON.parse(localStorage.getItem(STORE)||'null');if(kept&&kept.answers)state=kept;}catch(e){}
function keep(){try{localStorage.setItem(STORE,JSON.stringify(state));}catch(e){}}
function el(tag,cls,text){const e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
function answer(key){return state.answers[key]||(state.answers[key]={});}
function done(){
  if(PAIR)return D.items.filter(i=>(state.answers[i.item]||{}).choice).length;
  let n=0;D.items.forEach(i=>i.outputs.forEach(o=>{const a=state.answers[o.code]||{};if(DIMS.every(d=>a[d]))n++;}));return n;}
function total(){return PAIR?D.items.length:D.items.reduce((n,i)=>n+i.outputs.length,0);}
function block(label,text){const d=el('div');d.appendChild(el('strong','',label));d.appendChild(el('pre','',text));return d;}
function render(){
  const item=D.items[state.at], main=document.getElementById('item');main.dataset.item=item.item;
  main.replaceChildren();
  document.getElementById('where').textContent='item '+(state.at+1)+' of '+D.items.length+' ('+item.item+')';
  document.getElementById('progress').textContent=done()+' of '+total()+' rated';
  main.appendChild(block('Input',item.input));main.appendChild(block('Reference',item.reference));
  const outs=el('div','outputs');
  item.outputs.forEach((o,k)=>{
    const box=el('div','output');box.dataset.code=o.code;
    box.appendChild(el('strong','',(PAIR?(k?'Right':'Left'):'Output '+(k+1))+' \u00b7 '+o.code));
    box.appendChild(el('pre','output-text',o.text));
    if(!PAIR)DIMS.forEach((d,j)=>{
      const row=el('div','dim'),a=answer(o.code);row.dataset.dim=d;
      if(k*DIMS.length+j===cursor)row.classList.add('active');
      row.appendChild(el('span','',d));
      for(let v=1;v<=5;v++){const b=el('button',a[d]===v?'on':'',String(v));b.dataset.value=v;
        b.onclick=()=>{cursor=k*DIMS.length+j;rate(v);};row.appendChild(b);}
      box.appendChild(row);});
    if(!PAIR){const c=el('textarea','comment');c.placeholder='comment';c.value=answer(o.code).comment||'';
      c.oninput=()=>{answer(o.code).comment=c.value;keep();};box.appendChild(c);}
    outs.appendChild(box);});
  main.appendChild(outs);
  if(PAIR){const a=answer(item.item),row=el('div','dim choice');
    [['left','Left is better (1)'],['tie','Tie (t)'],['right','Right is better (2)']].forEach(([v,t])=>{
      const b=el('button',a.choice===v?'on':'',t);b.dataset.choice=v;b.onclick=()=>pick(v);row.appendChild(b);});
    main.appendChild(row);const c=el('textarea','comment');c.placeholder='comment';c.value=a.comment||'';
    c.oninput=()=>{a.comment=c.value;keep();};main.appendChild(c);}
}
function rate(v){const item=D.items[state.at],k=Math.floor(cursor/DIMS.length),d=DIMS[cursor%DIMS.length];
  answer(item.outputs[k].code)[d]=v;keep();
  if(cursor<item.outputs.length*DIMS.length-1)cursor++;render();}
function pick(v){answer(D.items[state.at].item).choice=v;keep();render();}
function go(step){const at=state.at+step;if(at<0||at>=D.items.length)return;state.at=at;cursor=0;keep();render();}
function cell(v){let s=v===undefined||v===null?'':String(v);if(/^[=+\-@\t\r]/.test(s))s="'"+s;
  return /[",\n\r]/.test(s)?'"'+s.replace(/"/g,'""')+'"':s;}
function csv(){
  const rows=[D.columns];
  D.items.forEach(i=>{
    if(PAIR){const a=state.answers[i.item]||{};
      rows.push([D.export,D.rater,i.item,i.outputs[0].code,i.outputs[1].code,a.choice||'',a.comment||'']);}
    else i.outputs.forEach(o=>{const a=state.answers[o.code]||{};
      rows.push([D.export,D.rater,i.item,o.code,...DIMS.map(d=>a[d]||''),a.comment||'']);});});
  return rows.map(r=>r.map(cell).join(',')).join('\n')+'\n';}
function save(){const blob=new Blob([csv()],{type:'text/csv'}),a=document.createElement('a');
  a.href=URL.createObjectURL(blob);a.download='ratings-'+D.rater+'-'+D.export+'.csv';
  document.body.appendChild(a);a.click();a.remove();}
window.reviewCsv=csv;
document.getElementById('prev').onclick=()=>go(-1);document.getElementById('next').onclick=()=>go(1);
document.getElementById('save').onclick=save;
document.addEventListener('keydown',e=>{
  if(e.target.tagName==='TEXTAREA'||e.ctrlKey||e.metaKey||e.altKey)return;
  const n=D.items[state.at].outputs.length*DIMS.length;
  if(PAIR&&e.key==='1')pick('left');else if(PAIR&&e.key==='2')pick('right');
  else if(PAIR&&(e.key==='t'||e.key==='0'))pick('tie');
  else if(!PAIR&&/^[1-5]$/.test(e.key))rate(Number(e.key));
  else if(!PAIR&&e.key==='ArrowDown'){cursor=Math.min(cursor+1,n-1);render();}
  else if(!PAIR&&e.key==='ArrowUp'){cursor=Math.max(cursor-1,0);render();}
  else if(e.key==='n'||e.key==='ArrowRight')go(1);else if(e.key==='p'||e.key==='ArrowLeft')go(-1);
  else if(e.key==='s')save();else return;
  e.preventDefault();});
render();
})();
"""

KEYS_RATING = (
    "keys: 1-5 rate the highlighted line and move on; up/down move; n/p or right/left: next/previous item; s: save"
)
KEYS_PAIR = "keys: 1 left is better, 2 right is better, t tie; n/p or right/left: next/previous item; s: save"


def script_json(value: object) -> str:
    """JSON that cannot end its <script> element or open a comment: <, >, & and the JS line separators
    escaped (still the same JSON once parsed)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escaped)
    return text.replace("\u2029", "\\u2029")


def review_form(export_id: str, rater: str, mode: str, suite: str, items: Sequence[ReviewItem]) -> str:
    data = {
        "export": export_id,
        "rater": rater,
        "mode": mode,
        "dimensions": list(DIMENSIONS),
        "columns": list(PAIR_COLUMNS if mode == "pairwise" else RATING_COLUMNS),
        "items": [
            {
                "item": found.item,
                "input": found.input,
                "reference": found.reference,
                "outputs": [{"code": code, "text": text} for code, text in found.outputs],
            }
            for found in items
        ],
    }
    title = html.escape(f"Review {suite}: {export_id}, rater {rater}", quote=True)
    keys = KEYS_PAIR if mode == "pairwise" else KEYS_RATING
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            # nothing may be fetched: the form is opened offline, and a hostile output must not phone home
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'none'\">",
            f"<title>{title}</title><style>{CSS}</style></head>",
            f'<body class="{html.escape(mode)}">',
            f'<header><h1>{title}</h1><span id="where"></span><span id="progress"></span></header>',
            f'<p class="keys">{html.escape(keys)}. Ratings stay in this browser until you save them.</p>',
            '<main id="item"></main>',
            '<nav><button id="prev">Previous (p)</button><button id="next">Next (n)</button>'
            '<button id="save">Save ratings CSV (s)</button></nav>',
            f'<script type="application/json" id="review-data">{script_json(data)}</script>',
            f"<script>{JS}</script>",
            "</body></html>",
            "",
        ]
    )
