/* The C API test programs' check for a call that must succeed (C11, like them). */
#ifndef POCKETLORA_TESTS_CAPI_OK_H
#define POCKETLORA_TESTS_CAPI_OK_H
#include <stdio.h>
#include <stdlib.h>

#include "api/pocketlora.h"

/* A call that must succeed: the test cannot go on without it. */
#define OK(call)                                                                                            \
  do {                                                                                                      \
    pl_status ok_st_ = (call);                                                                              \
    if (ok_st_ != PL_OK) {                                                                                  \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call, pl_status_name(ok_st_),      \
              pl_last_error());                                                                             \
      exit(1);                                                                                              \
    }                                                                                                       \
  } while (0)

#endif
