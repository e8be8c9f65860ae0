"Metrics with intervals, figures, reports, comparisons of runs and the rubric a project is checked against."
