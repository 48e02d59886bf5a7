/* coco_tool — the captioning importers for the Python layout test, which
 * runs before `ctrain prepare` knows them:
 *   coco_tool synthetic OUT_DIR N_TRAIN N_VAL CAPTIONS_PER_IMAGE SEED
 *   coco_tool prepare SRC_DIR OUT.h5 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/prepare_coco.h"

int main(int argc, char **argv) {
  struct ct_err e = {0};
  int rc;
  if (argc == 7 && !strcmp(argv[1], "synthetic"))
    rc = prepare_synthetic_coco(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
                                strtoull(argv[6], NULL, 10), &e);
  else if (argc == 4 && !strcmp(argv[1], "prepare"))
    rc = prepare_coco(argv[2], argv[3], 0, &e);
  else
    rc = err_set(&e, CT_ERR_USAGE,
                 "usage: coco_tool synthetic DIR NTRAIN NVAL PER SEED | prepare SRC OUT");
  if (rc) fprintf(stderr, "coco_tool: %s\n", e.msg);
  return rc;
}
