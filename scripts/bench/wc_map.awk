# A streaming mapper for word count (mrkv worker --mapper 'mawk -f wc_map.awk'): counts the words of
# its input (runs of [A-Za-z], as wc.awk) and prints "word<TAB>count" per distinct word, so only one
# record per word and input crosses the shuffle (a combiner inside the mapper, as wc's built-in map does).
{
  n = split($0, w, /[^A-Za-z]+/)
  for (i = 1; i <= n; i++)
    if (w[i] != "") c[w[i]]++
}
END {
  for (k in c) print k "\t" c[k]
}
