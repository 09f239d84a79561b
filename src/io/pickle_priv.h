/* Private pieces shared by the two restricted pickle readers (pymap.c: numpy's ROI mapping
 * dicts; pth.c: PyTorch state dicts). */
#ifndef RDML_PICKLE_PRIV_H
#define RDML_PICKLE_PRIV_H

#include <stdint.h>

/* The pickle opcode's name ("REDUCE", "GLOBAL", ...; "unknown" for a byte that is none). */
const char *rdml_pickle_op_name(uint8_t op);

#endif
