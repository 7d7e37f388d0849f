# Word count as the lab defines it, for ASCII text: a word is a run of letters [A-Za-z].
# Prints "word count" per distinct word (unordered), the same lines as `mrkv sequential --app wc`.
{
  n = split($0, w, /[^A-Za-z]+/)
  for (i = 1; i <= n; i++)
    if (w[i] != "") c[w[i]]++
}
END {
  for (k in c) print k, c[k]
}
