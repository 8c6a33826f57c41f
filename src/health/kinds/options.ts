// Option schemas more than one kind uses.
import { z } from "zod";

export const portOption = z.number().int("must be a whole number").min(1, "must be 1-65535").max(65535, "must be 1-65535");

