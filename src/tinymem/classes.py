"""Class counts of the datasets: a leaf module the data, the heads and the metrics all read."""

EK100_VERBS = 97  # Epic-Kitchens-100 verb classes
EK100_NOUNS = 300  # Epic-Kitchens-100 noun classes
BREAKFAST_ACTIONS = 48  # Breakfast sub-action classes (SIL included)
BREAKFAST_ACTIVITIES = 10  # Breakfast activities (cereals ... tea)
