#!/usr/bin/env bash
# Make sure N MB of 2 MB hugepages are free and hugetlbfs is mounted.
# Exit 0 if they are (setting them up when root), 1 if not: callers fall back to --no-huge.
set -u
need_mb=${1:-512}
free_pages() { awk '/^HugePages_Free:/ {print $2}' /proc/meminfo; }
page_kb() { awk '/^Hugepagesize:/ {print $2}' /proc/meminfo; }
kb=$(page_kb); kb=${kb:-2048}
need_pages=$(( (need_mb * 1024 + kb - 1) / kb ))
if [ "$(id -u)" = 0 ]; then
  cur=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  free=$(free_pages)
  if [ "${free:-0}" -lt "$need_pages" ]; then
    echo $(( cur + need_pages - ${free:-0} )) > /proc/sys/vm/nr_hugepages 2>/dev/null || true
  fi
  mkdir -p /dev/hugepages
  if ! grep -q ' hugetlbfs ' /proc/mounts; then
    mount -t hugetlbfs none /dev/hugepages 2>/dev/null || true
  fi
fi
free=$(free_pages)
if [ "${free:-0}" -ge "$need_pages" ] && grep -q ' hugetlbfs ' /proc/mounts; then
  echo "hugepages: $(( free * kb / 1024 )) MB free"
  exit 0
fi
echo "hugepages: only $(( ${free:-0} * kb / 1024 )) MB free of the $need_mb MB needed (or no hugetlbfs mounted)" >&2
exit 1
