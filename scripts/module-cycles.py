import os,re,sys,itertools
def crate_mods(src):
    mods={}
    for root,_,files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'): continue
            p=os.path.join(root,f); rel=os.path.relpath(p,src)[:-3]
            parts=rel.split(os.sep)
            if parts[-1] in('lib','main','mod'): parts=parts[:-1]
            mods['::'.join(parts)]=p
    return mods
def strip_tests(text):
    i=text.find('#[cfg(test)]')
    return text if i<0 else text[:i]
bad=False
for src in sys.argv[1:]:
    mods=crate_mods(src)
    g={m:set() for m in mods}
    for m,p in mods.items():
        t=strip_tests(open(p).read()); t='\n'.join(l for l in t.split('\n') if not l.strip().startswith('//'))
        for u in re.findall(r'crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)',t):
            parts=u.split('::')
            # longest prefix that is a module
            for k in range(len(parts),0,-1):
                cand='::'.join(parts[:k])
                if cand in mods:
                    if cand!=m and not m.startswith(cand+'::') and cand!='' : g[m].add(cand)
                    break
        if m:
            parent='::'.join(m.split('::')[:-1])
            for u in re.findall(r'\bsuper::([a-z_][a-z0-9_]*)',t):
                cand=(parent+'::'+u) if parent else u
                if cand in mods and cand!=m: g[m].add(cand)
    # find cycles via DFS
    color={}
    def dfs(v,stack):
        nonlocal_bad=False
        color[v]=1; stack.append(v)
        for w in g[v]:
            if color.get(w)==1:
                print(src,'cycle:',' -> '.join(stack[stack.index(w):]+[w])); globals()['bad']=True
            elif w not in color: dfs(w,stack)
        stack.pop(); color[v]=2
    for v in g:
        if v not in color: dfs(v,[])
print('cycles found' if bad else 'no module cycles')
