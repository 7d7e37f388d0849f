# A streaming reducer for word count: its input is "word<TAB>count" lines sorted by word; prints
# "word total" per word, the lines of mrkv sequential --app wc.
BEGIN { FS = "\t" }
$1 != k {
  if (NR > 1) print k, n
  k = $1
  n = 0
}
{ n += $2 }
END { if (NR > 0) print k, n }
