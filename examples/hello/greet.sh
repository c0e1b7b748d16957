#!/bin/sh
echo "$GREETING (pid $$, hostname $(hostname))"
cat /app/built.txt
