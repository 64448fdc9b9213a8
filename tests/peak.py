"""Code to prepend to a `python -c` job that reports its own peak memory.

VmHWM is the process's own high-water mark; ru_maxrss would carry over exec the
peak of the pytest process that forked it (which built the test's big input)."""

PEAK = ("def peak_rss_mib():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) // 1024\n")
