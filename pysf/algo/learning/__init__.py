"""The learner side of APPO: batch preparation, the loss, optimization (Sample Factory's ``algo.learning``)."""
