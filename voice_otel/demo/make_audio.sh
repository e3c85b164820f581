#!/usr/bin/env bash
# Regenerates the demo's user utterances (voice_otel/demo/audio/*.wav) with espeak-ng and sox.
# Speech is espeak-ng's en-us+f2 voice at 130 words per minute (the variant pocketsphinx decodes
# best), resampled by sox to 16 kHz mono 16-bit PCM, the format pocketsphinx's model expects.
# Needs the Debian packages espeak-ng and sox. The list below must match UTTERANCES in
# voice_otel/demo/_audio.py (a test checks it).
set -euo pipefail
cd "$(dirname "$0")/audio"

tmp="$(mktemp --suffix=.wav)"
trap 'rm -f "$tmp"' EXIT

while IFS='|' read -r name text; do
  espeak-ng -v en-us+f2 -s 130 -w "$tmp" "$text"
  sox --no-dither "$tmp" -r 16000 -c 1 -b 16 "$name.wav"
  echo "$name.wav: $text ($(soxi -D "$name.wav") s)"
done <<'LIST'
01_weather|what is the weather like today
02_table|book a table for two people
03_hours|what time do you open tomorrow
04_pizza|i would like to order a pizza
05_taxi|i need a taxi to the airport
06_thanks|thank you very much
LIST
