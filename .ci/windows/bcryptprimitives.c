/* ProcessPrng for wine 8, which has no bcryptprimitives.dll: every Windows program built by
 * Rust 1.78 or later imports ProcessPrng from it for its random bytes (Windows 10 and later
 * have it). Built into the wine prefix by .ci/windows/run for the tests; never shipped. */
#include <windows.h>

/* RtlGenRandom, exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
